"""Minimal Django settings for workload 4 (bench/hordak.py): django-hordak on a throwaway PostgreSQL
database named by BENCH_HORDAK_DB. Used by the benchmark only; creditdesk itself has no Django."""

import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "mptt", "djmoney", "hordak"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("BENCH_HORDAK_DB", "creditdesk_bench_hordak"),
        "USER": os.environ.get("BENCH_PGUSER", "postgres"),
        "HOST": os.environ.get("BENCH_PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("BENCH_PGPORT", "5432"),
        # Durability as shipped: synchronous_commit stays on (the server default).
        "CONN_MAX_AGE": None,
    }
}
CURRENCIES = ["EUR"]
DEFAULT_CURRENCY = "EUR"
HORDAK_INTERNAL_CURRENCY = "EUR"
# Credits are whole numbers; hordak stores decimals.
HORDAK_DECIMAL_PLACES = 2
