//! A database made by an earlier release and upgraded by this one equals a fresh one: the
//! migrations up to 0004 (the last release's) are applied from a copy of their files, a row is
//! stored, then the server's own `connect` brings it up to date. SQLite (PostgreSQL runs the
//! same SQL files, and every other test migrates a fresh PostgreSQL database from zero).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sqlx::Row;

/// Every table and index the schema has, with its SQL (sqlx's own bookkeeping left out).
async fn schema(pool: &sqlx::AnyPool) -> Vec<(String, String, String)> {
    sqlx::query(
        "SELECT type, name, COALESCE(sql, '') AS sql FROM sqlite_master \
         WHERE name NOT LIKE '_sqlx%' AND name NOT LIKE 'sqlite_%' ORDER BY type, name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("type"), r.get("name"), r.get("sql")))
    .collect()
}

#[tokio::test]
async fn an_upgraded_database_equals_a_fresh_one_and_keeps_its_rows() {
    sqlx::any::install_default_drivers();
    let d = std::env::temp_dir().join(format!("evoucher-migrations-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let old = d.join("0004");
    std::fs::create_dir_all(&old).unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&all)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for f in files
        .iter()
        .filter(|f| *f.file_name().unwrap().to_string_lossy() < *"0005")
    {
        std::fs::copy(f, old.join(f.file_name().unwrap())).unwrap();
    }

    // The last release's database, with a program in it.
    let upgraded = format!("sqlite://{}?mode=rwc", d.join("upgraded.db").display());
    {
        let pool = sqlx::AnyPool::connect(&upgraded).await.unwrap();
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        assert!(
            !schema(&pool)
                .await
                .iter()
                .any(|t| t.1 == "redemptions_by_voids"),
            "the old schema has no voids index"
        );
        sqlx::query(
            "INSERT INTO programs (id, name, issuer, currency, amount, validity_days, partial, categories, created_at) \
             VALUES ('p1', 'Food', 'https://food.example', 'KES', 100, 30, 0, '[]', 1)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let pool =
        evoucher_server::db::connect(&format!("sqlite://{}", d.join("upgraded.db").display()))
            .await
            .unwrap();
    let fresh = evoucher_server::db::connect(&format!("sqlite://{}", d.join("fresh.db").display()))
        .await
        .unwrap();
    let (a, b) = (schema(&pool).await, schema(&fresh).await);
    assert!(a.iter().any(|t| t.1 == "redemptions_by_voids"));
    assert_eq!(a, b, "upgraded and fresh schemas differ");
    let name: String = sqlx::query("SELECT name FROM programs WHERE id = 'p1'")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("name");
    assert_eq!(name, "Food", "the old row survived the upgrade");
}
