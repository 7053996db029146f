//! A database restart is a transient error, not an internal one: the
//! scheduler and conductor then retry instead of failing the build for
//! good (issue 16, fault survival 3: PostgreSQL stopped and started).

use sqlx::{Connection, Executor};

#[tokio::test]
async fn a_connection_terminated_by_the_server_is_transient() {
    let url = cloud_test_utils::pg_base_url();
    let mut victim = match sqlx::postgres::PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping: PostgreSQL at {url} is unreachable: {e}");
            return;
        }
        Err(e) => panic!("PostgreSQL at {url} is unreachable: {e}"),
    };
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut victim)
        .await
        .unwrap();
    let mut admin = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
    // What a server restart does to every connection: 57P01.
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .execute(&mut admin)
        .await
        .unwrap();
    let err = victim.execute("SELECT 1").await.unwrap_err();
    assert!(
        cloud_store::is_transient(&err),
        "a terminated connection is not transient: {err:?}"
    );
    // A plain mistake is not.
    let err = admin
        .execute("SELECT * FROM no_such_table")
        .await
        .unwrap_err();
    assert!(!cloud_store::is_transient(&err), "{err:?}");
}
