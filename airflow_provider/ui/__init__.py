"""Pages the provider adds to Airflow's API server (an Airflow plugin, ``plugin.py``).

The Submit task's extra link opens the batch status page (``page.py``): the batch's state,
counts and the status of each row, fetched by the API server with the task's connection,
behind Airflow's own sign-in, in a few threads of the page's own (``bounded.py``) so that a
slow server never holds Airflow's, and with the connection's secrets kept off it
(``redaction.py``). ``urls.py`` builds and checks the page's address; it imports only the
standard library, since the link is built in the task's worker.
"""
