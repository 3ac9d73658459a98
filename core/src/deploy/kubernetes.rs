//! Kubernetes deployer.
