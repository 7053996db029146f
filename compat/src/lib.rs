//! OpenStack compatibility harness: the real, unmodified clients
//! (python-openstackclient, openstacksdk, Ansible's openstack.cloud
//! collection) against a running cloud.
//!
//! The clients live in a cached virtualenv made by `compat/venv.sh`
//! ([`venv::ensure`]); [`cloud::Cloud`] starts either `cloud-aio` with fake
//! hosts or the multi-process deployment (cloud-api, cloud-conductor,
//! cloud-scheduler, cloud-compute over PostgreSQL and RabbitMQ);
//! [`tools::Tools`] writes a `clouds.yaml` for it and runs the clients
//! with `OS_CLIENT_CONFIG_FILE`/`OS_CLOUD`; [`scenarios`] are the client
//! sessions the tests run, each step asserting on the command's output.
//!
//! Why a harness of its own: "OpenStack-compatible" is only true if the
//! clients people use work unmodified, and the only proof is running them.

pub mod cloud;
pub mod scenarios;
pub mod tools;
pub mod venv;

/// The compat/ directory (requirements, venv.sh, the SDK script, the
/// playbook).
pub fn compat_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
