//! Docker deployer.
