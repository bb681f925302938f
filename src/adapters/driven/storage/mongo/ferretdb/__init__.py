"""Profile `ferretdb`: what FerretDB v1 needs and a real MongoDB never pays for (document locks,
grouped inserts and marks, point feed reads, sync-state writes by `_id`). Each module names the
FerretDB limit it works around; the composition root injects them only under that profile."""
