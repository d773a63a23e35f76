"""Table and column names for hand-written SQL, read from the models (never typed out)."""


def columns(model, *names: str) -> list[str]:
    """The database columns of these fields of `model`, in order."""
    return [model._meta.get_field(name).column for name in names]


def insert(model, names: tuple[str, ...]) -> str:
    """INSERT of one row of `model` with these fields, one %s each."""
    return (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns(model, *names))}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(names))})"
    )
