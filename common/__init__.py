"""The bottom layer every stage may import: settings, errors, Kafka client options, process ties.

It imports no stage (streams, warehouse, dashboards, notify) and no part of
the CLI (``callstream``); ``tests/unit/test_layering.py`` checks the order of
the layers: ``streams.domain`` < ``common`` < stages < ``callstream``.
"""
