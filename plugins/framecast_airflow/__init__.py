"""Airflow-specific extensions of framecast: hooks, sensors, triggers, operators, UI views.

The core package ``framecast`` never imports Airflow; everything Airflow-shaped lives here.
"""
