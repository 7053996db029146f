//! The store contract: the same behaviour on PostgreSQL and on SQLite.
//! Every case runs once per backend (`<case>::sqlite`, `<case>::postgres`).

use cloud_model::flavor::NewFlavor;
use cloud_model::instance::{FlavorSnapshot, Instance, PowerState, TaskState, VmState};
use cloud_model::{DomainId, Error, FlavorId, ImageId, InstanceId, ProjectId, Timestamp, UserId};
use cloud_store::{Claim, ClaimError, FlavorFilter, HostReport, NewUser, Scope, Store};
use cloud_test_utils::{TestDb, both_backends, fake_host_report};
use std::collections::BTreeMap;

async fn project(store: &Store, name: &str) -> ProjectId {
    store.domain_ensure_default().await.unwrap();
    store
        .project_create(&DomainId::default_domain(), name, "", true)
        .await
        .unwrap()
        .id
}

async fn user(store: &Store, name: &str) -> UserId {
    store.domain_ensure_default().await.unwrap();
    store
        .user_create(&NewUser {
            domain_id: DomainId::default_domain(),
            name: name.into(),
            password_hash: "x".into(),
            enabled: true,
            default_project_id: None,
            email: None,
        })
        .await
        .unwrap()
        .id
}

both_backends!(identity_and_tokens, |db: TestDb| async move {
    let s = &db.store;
    let p = project(s, "p1").await;
    let u = user(s, "alice").await;
    assert!(matches!(
        s.project_create(&DomainId::default_domain(), "p1", "", true)
            .await,
        Err(Error::Conflict { .. })
    ));
    let role = s.role_ensure("member").await.unwrap();
    assert_eq!(s.role_ensure("member").await.unwrap(), role, "idempotent");
    s.role_assign(&p, &u, &role.id).await.unwrap();
    s.role_assign(&p, &u, &role.id).await.unwrap();
    assert_eq!(s.roles_of(&u, &p).await.unwrap(), vec![role.clone()]);
    let now = Timestamp::now();
    s.token_insert("h1", &u, Some(&p), "audit", now, now.plus_seconds(60))
        .await
        .unwrap();
    let info = s.token_lookup("h1", now).await.unwrap().expect("valid");
    assert_eq!(info.user.id, u);
    assert_eq!(info.project.as_ref().unwrap().id, p);
    assert_eq!(info.roles, vec![role.clone()]);
    assert!(
        s.token_lookup("h1", now.plus_seconds(61))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(s.token_revoke("h1").await.unwrap());
    assert!(
        s.token_lookup("h1", now).await.unwrap().is_none(),
        "revoked"
    );
    assert!(!s.token_revoke("h1").await.unwrap());
    // Unassigning the role leaves a scoped token without roles.
    s.role_unassign(&p, &u, &role.id).await.unwrap();
    assert!(matches!(
        s.role_unassign(&p, &u, &role.id).await,
        Err(Error::NotFound { .. })
    ));
});

fn new_flavor(id: &str, name: &str, public: bool) -> NewFlavor {
    NewFlavor {
        id: Some(FlavorId::from_string(id)),
        name: name.into(),
        vcpus: 1,
        ram_mb: 512,
        disk_gb: 1,
        swap_mb: 0,
        ephemeral_gb: 0,
        rxtx_factor: 1.0,
        is_public: public,
        description: None,
    }
}

both_backends!(flavors_and_access, |db: TestDb| async move {
    let s = &db.store;
    s.flavor_create(&new_flavor("a", "pub", true))
        .await
        .unwrap();
    s.flavor_create(&new_flavor("b", "priv", false))
        .await
        .unwrap();
    assert!(matches!(
        s.flavor_create(&new_flavor("c", "pub", true)).await,
        Err(Error::Conflict { .. })
    ));
    let p = ProjectId::from_string("p");
    let visible = |f: FlavorFilter| async move { s.flavor_list(&f).await.unwrap().len() };
    let mine = FlavorFilter {
        access_project: Some(p.clone()),
        ..Default::default()
    };
    assert_eq!(visible(mine.clone()).await, 1);
    s.flavor_access_add(&FlavorId::from_string("b"), &p)
        .await
        .unwrap();
    assert_eq!(visible(mine).await, 2);
    let specs: BTreeMap<String, String> = [("hw:numa_nodes".to_owned(), "1".to_owned())].into();
    s.flavor_extra_specs_set(&FlavorId::from_string("a"), &specs)
        .await
        .unwrap();
    assert_eq!(
        s.flavor_get(&FlavorId::from_string("a"))
            .await
            .unwrap()
            .extra_specs,
        specs
    );
    s.flavor_delete(&FlavorId::from_string("a")).await.unwrap();
    assert!(matches!(
        s.flavor_get(&FlavorId::from_string("a")).await,
        Err(Error::NotFound { .. })
    ));
});

both_backends!(keypairs_are_per_user_with_quota, |db: TestDb| async move {
    let s = &db.store;
    let a = user(s, "a").await;
    let b = user(s, "b").await;
    s.keypair_create(&a, "k", "ssh-ed25519 AAA", "fp", 2)
        .await
        .unwrap();
    s.keypair_create(&b, "k", "ssh-ed25519 BBB", "fp", 2)
        .await
        .unwrap();
    assert!(matches!(
        s.keypair_create(&a, "k", "ssh-ed25519 AAA", "fp", 2).await,
        Err(Error::Conflict { .. })
    ));
    s.keypair_create(&a, "k2", "ssh-ed25519 AAA", "fp", 2)
        .await
        .unwrap();
    assert!(matches!(
        s.keypair_create(&a, "k3", "ssh-ed25519 AAA", "fp", 2).await,
        Err(Error::QuotaExceeded { .. })
    ));
    assert_eq!(
        s.keypair_get(&b, "k").await.unwrap().public_key,
        "ssh-ed25519 BBB"
    );
});

fn instance(project: &ProjectId, vcpus: i64) -> Instance {
    let now = Timestamp::now();
    Instance {
        id: InstanceId::new(),
        project_id: project.clone(),
        user_id: UserId::from_string("u"),
        name: "vm".into(),
        hostname: "vm".into(),
        vm_state: VmState::Building,
        task_state: Some(TaskState::Scheduling),
        power_state: PowerState::NoState,
        host: None,
        node: None,
        availability_zone: "nova".into(),
        flavor: FlavorSnapshot {
            id: "1".into(),
            name: "tiny".into(),
            vcpus,
            ram_mb: 512,
            disk_gb: 1,
            swap_mb: 0,
            ephemeral_gb: 0,
            extra_specs: BTreeMap::new(),
        },
        image_id: ImageId::new(),
        key_name: None,
        key_data: None,
        user_data: None,
        metadata: BTreeMap::new(),
        tags: Vec::new(),
        access_ipv4: String::new(),
        access_ipv6: String::new(),
        config_drive: String::new(),
        launch_index: 0,
        reservation_id: "r-1".into(),
        server_group_id: None,
        requested_networks: Vec::new(),
        security_groups: vec!["default".into()],
        numa_placement: None,
        fault: None,
        progress: 0,
        state_gen: 0,
        task_deadline: None,
        created_at: now,
        updated_at: now,
        launched_at: None,
        terminated_at: None,
        deleted_at: None,
    }
}

both_backends!(instances_quota_and_generations, |db: TestDb| async move {
    let s = &db.store;
    let p = ProjectId::from_string("p");
    let limits: BTreeMap<String, i64> = [
        ("instances".to_owned(), 2),
        ("cores".to_owned(), 100),
        ("ram".to_owned(), -1),
    ]
    .into();
    let a = instance(&p, 1);
    s.instances_create(std::slice::from_ref(&a), "req-1", &limits)
        .await
        .unwrap();
    s.instances_create(&[instance(&p, 1)], "req-2", &limits)
        .await
        .unwrap();
    let err = s
        .instances_create(&[instance(&p, 1)], "req-3", &limits)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Quota exceeded for instances"),
        "{err}"
    );
    assert_eq!(s.compute_usage(&p).await.unwrap()["instances"], 2);
    // Generation-guarded reports: an old one never overwrites a newer one.
    assert!(
        s.instance_update_runtime(a.id, 5, PowerState::Running)
            .await
            .unwrap()
    );
    assert!(
        !s.instance_update_runtime(a.id, 4, PowerState::Shutdown)
            .await
            .unwrap()
    );
    assert!(
        !s.instance_update_runtime(a.id, 5, PowerState::Shutdown)
            .await
            .unwrap()
    );
    let got = s
        .instance_get(a.id, &Scope::Project(p.clone()))
        .await
        .unwrap();
    assert_eq!(got.power_state, PowerState::Running);
    // Another project cannot see it.
    assert!(matches!(
        s.instance_get(a.id, &Scope::Project(ProjectId::from_string("other")))
            .await,
        Err(Error::NotFound { .. })
    ));
    // A conflicting transition names the blocking state.
    let err = s
        .instance_begin_task(
            a.id,
            &Scope::All,
            "stop",
            &[VmState::Active],
            &[],
            TaskState::PoweringOff,
            Timestamp::now(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("task_state scheduling"), "{err}");
    // Deleting gives the quota back, once.
    assert!(s.instance_mark_deleted(&got).await.unwrap());
    assert!(!s.instance_mark_deleted(&got).await.unwrap());
    assert_eq!(s.compute_usage(&p).await.unwrap()["instances"], 1);
});

both_backends!(workflow_leases, |db: TestDb| async move {
    let s = &db.store;
    let id = InstanceId::new();
    s.workflow_create(id, "build", "schedule").await.unwrap();
    let wf = cloud_store::workflow_id(id, "build");
    assert!(s.workflow_claim(&wf, "c1", 60).await.unwrap().is_some());
    assert!(
        s.workflow_claim(&wf, "c2", 60).await.unwrap().is_none(),
        "leased to c1"
    );
    assert!(
        !s.workflow_advance(&wf, "c2", "schedule", "networking", &serde_json::json!({}))
            .await
            .unwrap()
    );
    assert!(
        s.workflow_advance(
            &wf,
            "c1",
            "schedule",
            "networking",
            &serde_json::json!({"x": 1})
        )
        .await
        .unwrap()
    );
    assert!(
        !s.workflow_advance(&wf, "c1", "schedule", "networking", &serde_json::json!({}))
            .await
            .unwrap(),
        "stale step"
    );
    s.workflow_release(&wf, "c1").await.unwrap();
    let taken = s.workflow_claim(&wf, "c2", 60).await.unwrap().unwrap();
    assert_eq!(taken.step, "networking");
    assert_eq!(taken.data["x"], 1);
    s.workflow_finish(&wf, "done").await.unwrap();
    assert!(
        s.workflow_claim(&wf, "c3", 60).await.unwrap().is_none(),
        "finished"
    );
});

both_backends!(placement_claims_are_atomic, |db: TestDb| async move {
    let s = &db.store;
    let provider = s
        .host_register(&HostReport {
            inventory: vec![("VCPU".into(), 0, 1.0)],
            ..fake_host_report("h1")
        })
        .await
        .unwrap();
    // Ten concurrent claims of 1 vCPU each on a 4-vCPU host: exactly 4 win.
    let claims = (0..10).map(|_| {
        let s = s.clone();
        tokio::spawn(async move {
            s.placement_claim(&Claim {
                provider_id: provider,
                host: "h1".into(),
                consumer: InstanceId::new(),
                vcpus: 1,
                memory_mb: 128,
                disk_gb: 1,
                pinned_cpus: Vec::new(),
                hugepages: Vec::new(),
            })
            .await
            .unwrap()
        })
    });
    let mut won = 0;
    for c in claims {
        match c.await.unwrap() {
            Ok(()) => won += 1,
            Err(ClaimError::Capacity { class }) => assert_eq!(class, "VCPU"),
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(won, 4);
    let node = s.compute_node("h1").await.unwrap();
    assert_eq!(node.vcpu.used, 4);
    // A pinned CPU can be held once only.
    let pin = |cpu| Claim {
        provider_id: provider,
        host: "h1".into(),
        consumer: InstanceId::new(),
        vcpus: 0,
        memory_mb: 0,
        disk_gb: 0,
        pinned_cpus: vec![cpu],
        hugepages: Vec::new(),
    };
    let first = pin(2);
    assert_eq!(s.placement_claim(&first).await.unwrap(), Ok(()));
    assert_eq!(
        s.placement_claim(&pin(2)).await.unwrap(),
        Err(ClaimError::CpuTaken { cpu: 2 })
    );
    s.placement_release(first.consumer).await.unwrap();
    assert_eq!(s.placement_claim(&pin(2)).await.unwrap(), Ok(()));
    // Re-registering keeps what is allocated.
    let again = s
        .host_register(&HostReport {
            vcpus: 8,
            ..fake_host_report("h1")
        })
        .await
        .unwrap();
    assert_eq!(again, provider);
    let node = s.compute_node("h1").await.unwrap();
    assert_eq!((node.vcpu.total, node.vcpu.used), (8, 4));
});

both_backends!(migrations_are_idempotent, |db: TestDb| async move {
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    db.store.ping().await.unwrap();
});
