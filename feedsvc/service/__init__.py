"""``feedsvc run``: the long-running service around the build.

``daemon`` (lifecycle, signals, the daemon lock), ``watch`` (watchdog events → debounced
batches), ``schedule`` (apscheduler: one rebuild at a time), ``serve`` (HTTP over feeds/),
``websub`` (hub pings after a build), ``status`` (``/healthz`` and ``/status``), ``logs``.
"""
