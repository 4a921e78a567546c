"""End-to-end tests under real Airflow processes."""
