//! What the provider and number endpoints share: a view with an id and a
//! version, answered with its ETag and Location, read by id within the
//! caller's tenant, listed by id after a cursor.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use events::TenantId;
use serde::Serialize;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::etag::etag;
use super::list::ListQuery;
use super::{ApiError, Gateway};

/// A read-table row as the API shows it.
pub trait Resource: Serialize + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin + 'static {
    /// Its name in a 404 (`provider`, `number`).
    const NAME: &'static str;
    /// Its collection's path; the resource is at `{PATH}/{id}`.
    const PATH: &'static str;
    /// `SELECT <columns> FROM <table>`, to which conditions are added.
    const SELECT: &'static str;
    /// The projection that keeps the table: a read waits for it to have
    /// applied the tenant's writes (`Gateway::fresh_for`).
    const PROJECTION: &'static dyn projections::Projection;
    /// The id newtype of the path.
    type Id: std::str::FromStr + Into<Uuid> + Copy + Send;

    fn id(&self) -> Self::Id;
    fn version(&self) -> i64;

    /// `status` with the view, its ETag and Location.
    fn respond(self, status: StatusCode) -> Response
    where
        Self: Sized,
    {
        let tag = etag(self.version());
        let location = (
            header::LOCATION,
            format!("{}/{}", Self::PATH, self.id().into()),
        );
        (status, [tag], [location], Json(self)).into_response()
    }
}

/// The id in a path segment; anything else is a 404 (the resource cannot exist).
pub fn id_from_path<R: Resource>(raw: &str) -> Result<R::Id, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(R::NAME))
}

/// `GET {PATH}/{id}`: the tenant's resource, or a 404.
pub async fn get_one<R: Resource>(
    gw: &Gateway,
    tenant: TenantId,
    raw: &str,
) -> Result<Response, ApiError> {
    let id: Uuid = id_from_path::<R>(raw)?.into();
    gw.fresh_for(tenant, &[R::PROJECTION]).await?;
    let row: Option<R> = sqlx::query_as(&format!("{} WHERE id = $1 AND tenant_id = $2", R::SELECT))
        .bind(id)
        .bind(tenant)
        .fetch_optional(&gw.deps.pool)
        .await?;
    Ok(row
        .ok_or(ApiError::NotFound(R::NAME))?
        .respond(StatusCode::OK))
}

/// One page of the tenant's resources by id after the cursor, `filter`
/// (conditions on `$3`, `$4`, … bound by `bind`) narrowing it.
pub async fn list<R, F>(
    gw: &Gateway,
    tenant: TenantId,
    q: &ListQuery,
    filter: &str,
    bind: F,
) -> Result<Response, ApiError>
where
    R: Resource,
    F: for<'q> FnOnce(
        sqlx::query::QueryAs<'q, sqlx::Postgres, R, sqlx::postgres::PgArguments>,
    )
        -> sqlx::query::QueryAs<'q, sqlx::Postgres, R, sqlx::postgres::PgArguments>,
{
    let after = q.uuid("cursor")?.unwrap_or(Uuid::nil());
    gw.fresh_for(tenant, &[R::PROJECTION]).await?;
    // `limit` is a checked integer (1..=500), not client text.
    let sql = format!(
        "{} WHERE tenant_id = $1 AND id > $2 {filter} ORDER BY id LIMIT {}",
        R::SELECT,
        q.limit + 1
    );
    let query = sqlx::query_as::<_, R>(&sql).bind(tenant).bind(after);
    let rows: Vec<R> = bind(query).fetch_all(&gw.deps.pool).await?;
    Ok(Json(q.page(rows, |r| -> Uuid { r.id().into() })).into_response())
}
