"""Points the apalis-board web app's in-app links at the /board prefix.

The app's router is built with base /board (TRUNK_BUILD_PUBLIC_URL), but its links are
absolute paths (`href="/tasks"`, `format!("/queues/{}", …)`) that leptos_router's `<A>` does
not prefix with the base, so they would leave /board. Every replacement below must match,
so a new app version that moved them stops the build instead of shipping broken links.

usage: python3 board-ui-links.py <apalis-board-web source dir> <prefix>
"""

import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1]) / "src"
prefix = sys.argv[2].rstrip("/")

# (file, pattern, how many times it must match)
LINKS = [
    ("components/sidebar.rs", r'href="/', 9),
    ("components/not_found.rs", r'href="/', 1),
    ("pages/tasks/index.rs", r'format!\("/tasks/\{status\}"\)', 1),
    ("pages/tasks/mod.rs", r'format!\("/queues/\{\}/tasks/\{\}", queue\(\)', 1),
    ("pages/queues/index.rs", r'format!\("/queues/\{\}", queue\(\)\)', 1),
    ("pages/queues/index.rs", r'format!\("/queues/\{\}/\{\}", queue\(\), status\)', 1),
    ("pages/queues/mod.rs", r'href=move \|\| format!\("/queues/', 2),
    ("pages/home/mod.rs", r'<A href=format!\(\s*"/queues/', 1),
]

for name, pattern, expected in LINKS:
    path = root / name
    text = path.read_text()
    found = len(re.findall(pattern, text))
    if found != expected:
        sys.exit(f"{name}: {pattern!r} matched {found} times, expected {expected}")

    def prefixed(match: re.Match) -> str:
        link = match.group(0)
        cut = link.index('"/') + 1
        return link[:cut] + prefix + link[cut:]

    path.write_text(re.sub(pattern, prefixed, text))
    print(f"{name}: {found} link(s) under {prefix}")
