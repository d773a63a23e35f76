"""The device HTTP API (Murano-style: activation, alias read/write/long poll, time) on
Django REST Framework.

Device requests are the hot path, so the views are DRF views with everything they
do not need taken out (base.DeviceAPIView): one renderer chosen without content
negotiation, one form parser that reads the body once, authentication classes
that load the device once, and one exception → status table per dialect
(exceptions.py). docs/device-api.md describes the contract.
"""
