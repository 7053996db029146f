//! The real OpenStack clients against the multi-process deployment:
//! cloud-api, cloud-conductor, cloud-scheduler and two cloud-compute
//! agents over PostgreSQL and RabbitMQ: the same sessions as on cloud-aio.

use cloud_compat::cloud::{Cloud, Layout};
use cloud_compat::scenarios::{ansible, negatives, osc, sdk};
use cloud_compat::tools::Tools;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstack_cli_full_session_and_errors() {
    let cloud = Cloud::start(Layout::Processes).await;
    let tools = Tools::new(&cloud);
    osc::run(&cloud, &tools).await;
    negatives::run(&tools).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstacksdk_and_ansible_sessions() {
    let cloud = Cloud::start(Layout::Processes).await;
    let tools = Tools::new(&cloud);
    sdk::run(&tools, "sdk").await;
    ansible::run(&tools, "ans").await;
}
