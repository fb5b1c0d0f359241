"""One aiogram Router per feature; each module's `make_router()` builds a fresh one."""
