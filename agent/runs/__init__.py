"""Run records: one durable, queryable record per job run, and the ways to read them.

- `model`: what a record holds, and its pure views; `store`: records on disk (`runs.sqlite3`);
- `recorder`: one run's record as the job runner writes it; `updates`: what a tool reports;
- `api`, `dashboard`, `pages`, `charts`: the records over HTTP and as web pages.
"""
