"""Live connectors from a plant: MQTT (JSON, plain numbers, Sparkplug B) and OPC UA.

Each feeds the same batched, idempotent writer as backfill and stream (``Store.write_batch``);
a message is acknowledged only after the batch holding it has committed, and what cannot be
parsed goes to ``dead_letters``.
"""
