//! The database: SQLite by default, PostgreSQL by URL, the same migrations for both (sqlx Any).

use sqlx::any::AnyPoolOptions;

use crate::ApiError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connect and migrate. `sqlite://FILE` creates the file if needed.
pub async fn connect(url: &str) -> Result<sqlx::AnyPool, ApiError> {
    sqlx::any::install_default_drivers();
    let url = if url.starts_with("sqlite:") && !url.contains('?') {
        format!("{url}?mode=rwc")
    } else {
        url.to_owned()
    };
    let sqlite = url.starts_with("sqlite:");
    let pool = AnyPoolOptions::new()
        .max_connections(if sqlite { 1 } else { 10 })
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    use sqlx::Executor;
                    conn.execute("PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
                        .await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    MIGRATOR.run(&pool).await?;
    // The audit log is append-only: triggers per database (the migrations are portable SQL).
    let triggers: &[&str] = if sqlite {
        &crate::audit::SQLITE_TRIGGERS
    } else {
        &crate::audit::POSTGRES_TRIGGERS
    };
    for t in triggers {
        sqlx::query(sqlx::AssertSqlSafe(*t)).execute(&pool).await?;
    }
    Ok(pool)
}
