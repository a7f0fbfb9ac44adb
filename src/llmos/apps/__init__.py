"""Applications built on llmos's system calls (`llmos.ops`), as a third party would build
them: the customer-service assistant (`support`, whose system calls are `llmos.ops.support`)
and opinion watches (`watch`). An application may also declare its own operations with
`llmos.ops.operation` in an `operations` module, which `llmos.ops.registry.load_all`
discovers by name."""
