//! Making sure a container's image is on the engine before the container is created: use
//! it when present, else try to pull it, else fail permanently with a message that says so.

use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;

use super::engine_error::{engine_error, is_not_found};
use super::say;
use crate::deploy::{DeployError, Progress};

/// Ensures `image` is present on the engine, pulling it when it is not.
pub(super) async fn ensure_image(
    docker: &Docker,
    image: &str,
    progress: &Progress,
) -> Result<(), DeployError> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(error) if is_not_found(&error) => {}
        Err(error) => return Err(engine_error(&format!("inspecting image {image}"), &error)),
    }
    say(progress, format!("pulling image {image}"));
    match pull(docker, image).await {
        Ok(()) => {
            say(progress, format!("pulled image {image}"));
            Ok(())
        }
        Err(reason) => Err(DeployError {
            message: format!(
                "image {image} is not present on the Docker engine and no registry pull \
                 succeeded"
            ),
            retryable: false,
            details: vec![format!("pull: {reason}")],
        }),
    }
}

async fn pull(docker: &Docker, image: &str) -> Result<(), String> {
    let (repository, tag) = split_reference(image);
    let mut options = CreateImageOptionsBuilder::default().from_image(repository);
    if let Some(tag) = tag {
        options = options.tag(tag);
    }
    let mut stream = docker.create_image(Some(options.build()), None, None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|error| error.to_string())?;
        if let Some(detail) = info.error_detail {
            return Err(detail.message.unwrap_or_else(|| "pull failed".to_owned()));
        }
    }
    Ok(())
}

/// Splits an image reference into what the pull endpoint takes: the repository, and the tag
/// (`latest` when the reference has neither tag nor digest, so a pull never fetches every tag).
fn split_reference(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image, None);
    }
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[name_start..].rfind(':') {
        Some(colon) => {
            let colon = name_start + colon;
            (&image[..colon], Some(&image[colon + 1..]))
        }
        None => (image, Some("latest")),
    }
}

#[cfg(test)]
mod tests {
    use super::split_reference;

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(split_reference("redis:7"), ("redis", Some("7")));
        assert_eq!(split_reference("redis"), ("redis", Some("latest")));
        assert_eq!(
            split_reference("registry.local:5000/team/app:1.2"),
            ("registry.local:5000/team/app", Some("1.2"))
        );
        assert_eq!(
            split_reference("registry.local:5000/team/app"),
            ("registry.local:5000/team/app", Some("latest"))
        );
        assert_eq!(
            split_reference("redis@sha256:abcd"),
            ("redis@sha256:abcd", None)
        );
    }
}
