// Subscribes to `executionUpdated` with the graphql-ws client library, starts the execution
// over HTTP once the subscription is live, and prints every status received as one JSON line.
// Usage: node subscribe_execution.mjs <http://host:port> <token> <projectId> <pipeline>
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [base, token, projectId, pipeline] = process.argv.slice(2);
const gql = async (query, variables) => {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
};

// The server runs one stage at a time here (worker concurrency 1): a first execution holds the
// slot for a while, so the watched one is still QUEUED when the subscription starts.
const start = (ms) => gql(
  'mutation($p: ID!, $n: String!, $i: JSON) { startExecution(input: {projectId: $p, pipeline: $n, input: $i}) { id status } }',
  { p: projectId, n: pipeline, i: { ms } },
);
await start(1500);
const started = await start(200);
const id = started.startExecution.id;

const client = createClient({
  url: base.replace(/^http/, 'ws') + '/graphql/ws',
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
});

const statuses = [];
await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`timed out; got ${statuses.join(',')}`)), 20000);
  client.subscribe(
    { query: 'subscription($id: ID!) { executionUpdated(id: $id) { id status progress { completed total } } }', variables: { id } },
    {
      next: (msg) => {
        if (msg.errors) { clearTimeout(timer); reject(new Error(JSON.stringify(msg.errors))); return; }
        statuses.push(msg.data.executionUpdated.status);
      },
      error: (err) => { clearTimeout(timer); reject(err); },
      complete: () => { clearTimeout(timer); resolve(); },
    },
  );
});
await client.dispose();
console.log(JSON.stringify({ id, statuses, completed: true }));
