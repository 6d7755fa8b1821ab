"""The local registry's queries, one module per resource; handlers call these, never SQL.

Each function takes the connection (inside the caller's transaction when it writes) and
answers rows or typed records. A page of rows is read with a fixed number of queries, not a
few per row: related rows come in one query for the whole page (`base.id_list`).
"""
