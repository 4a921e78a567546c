"""Tests of the pages the provider adds to Airflow: the batch status page and its link."""
