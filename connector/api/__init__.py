"""HTTP interface: FastAPI routers that verify, parse, enqueue and answer."""
