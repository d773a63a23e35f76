from django.apps import AppConfig


class MqttConfig(AppConfig):
    name = "mqtt"
    verbose_name = "MQTT broker"

    def ready(self):
        from devices import signals
        from mqtt import commands, sync

        signals.credentials_changed.connect(sync.credentials_changed, dispatch_uid="mqtt-sync")
        signals.secret_issued.connect(sync.secret_issued, dispatch_uid="mqtt-secret")
        signals.command_issued.connect(commands.command_issued, dispatch_uid="mqtt-command")
