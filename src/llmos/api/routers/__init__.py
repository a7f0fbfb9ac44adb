"""One router per resource; each module offers `router(allow) -> APIRouter`, where
`allow` is the policy dependency every route goes through. `llmos.api.app.ROUTERS`
lists them."""
