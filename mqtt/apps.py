from django.apps import AppConfig


class MqttConfig(AppConfig):
    name = "mqtt"
    verbose_name = "MQTT broker"

    def ready(self):
        from devices import signals
        from mqtt import sync

        signals.credentials_changed.connect(sync.credentials_changed, dispatch_uid="mqtt-sync")
        signals.secret_issued.connect(sync.secret_issued, dispatch_uid="mqtt-secret")
