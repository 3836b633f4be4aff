"""The pre-call media check: a real aiortc peer that checks a browser's camera,
microphone and network, judged by pure rules, run in a pool of worker processes.

The signalling hub uses only :mod:`mediacheck.service`::

    from mediacheck.service import MediaCheckService, MediaCheckSettings

Modules: ``verdict`` (pure rules and thresholds), ``result`` (value objects),
``analysis`` (per-frame measurements), ``offer`` / ``returnstream`` / ``peer`` (one
check as an aiortc peer), ``worker`` (the worker process), ``channel`` (hub <-> worker
framing), ``pool`` (worker processes seen from the hub), ``service`` (the API),
``synthetic`` (a generated-media client for tests and load tests).
"""
