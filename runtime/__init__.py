"""How the pieces are wired into running processes: the embedded runtime, the distributed
roles, and the registry."""
