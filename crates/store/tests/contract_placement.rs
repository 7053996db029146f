//! Placement claims of one consumer, on PostgreSQL and on SQLite.

use cloud_model::InstanceId;
use cloud_store::{Claim, Store};
use cloud_test_utils::{TestDb, both_backends, fake_host_report};

async fn host(s: &Store, name: &str) -> cloud_model::ProviderId {
    s.host_register(&fake_host_report(name)).await.unwrap()
}

fn claim(provider: cloud_model::ProviderId, host: &str, consumer: InstanceId) -> Claim {
    Claim {
        provider_id: provider,
        host: host.into(),
        consumer,
        vcpus: 2,
        memory_mb: 512,
        disk_gb: 10,
        pinned_cpus: vec![1],
        hugepages: Vec::new(),
    }
}

// A build whose conductor died after its host was claimed is scheduled
// again when resumed: the new claim must replace the old one, or the
// first host keeps the resources of a server that is not there (issue 16,
// fault survival 1: 26 vCPUs used for 25 servers).
both_backends!(
    a_new_claim_replaces_what_the_consumer_held_elsewhere,
    |db: TestDb| async move {
        let s = &db.store;
        let (a, b) = (host(s, "h-a").await, host(s, "h-b").await);
        let consumer = InstanceId::new();
        assert_eq!(
            s.placement_claim(&claim(a, "h-a", consumer)).await.unwrap(),
            Ok(())
        );
        // The same claim again is a no-op.
        assert_eq!(
            s.placement_claim(&claim(a, "h-a", consumer)).await.unwrap(),
            Ok(())
        );
        assert_eq!(s.compute_node("h-a").await.unwrap().vcpu.used, 2);
        assert_eq!(
            s.placement_claim(&claim(b, "h-b", consumer)).await.unwrap(),
            Ok(())
        );
        let (na, nb) = (
            s.compute_node("h-a").await.unwrap(),
            s.compute_node("h-b").await.unwrap(),
        );
        assert_eq!(
            (na.vcpu.used, na.memory_mb.used, na.disk_gb.used),
            (0, 0, 0)
        );
        assert_eq!(
            (nb.vcpu.used, nb.memory_mb.used, nb.disk_gb.used),
            (2, 512, 10)
        );
        assert!(
            s.pinned_cpus(a).await.unwrap().is_empty(),
            "the old host keeps a pinned CPU"
        );
        assert_eq!(s.pinned_cpus(b).await.unwrap(), vec![(1, consumer)]);
        // Releasing takes what is left.
        assert_eq!(s.placement_release(consumer).await.unwrap(), 3);
        assert_eq!(s.compute_node("h-b").await.unwrap().vcpu.used, 0);
    }
);
