"""Creating the SQL tables."""


def create_tables(store, metadata):
    """Create the tables of ``metadata`` that ``store`` lacks; existing tables are left as they are."""
    with store.transaction() as conn:
        metadata.create_all(conn, checkfirst=True)
