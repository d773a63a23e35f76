"""Portal forms for pairing a device by PIN and for a user's own devices."""

from django import forms

from registrations import services


class PairingForm(forms.Form):
    """Step one: which device type, the PIN the device shows, the serial's last digits."""

    device_type = forms.ModelChoiceField(
        queryset=None,
        label="Device type",
        empty_label="Choose the kind of device",
        help_text="Only device types with a device waiting to be paired are listed.",
        error_messages={"invalid_choice": "No device of that type is waiting to be paired."},
    )
    pin = forms.CharField(
        label="PIN",
        max_length=20,
        help_text="The 8 characters the device shows. Letters and digits; never 0, 1, I, L or O.",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )
    serial_suffix = forms.CharField(
        label="Last 4 digits of the serial number",
        max_length=8,
        help_text="From the device certificate's serial number, as printed on the device: "
        "0-9 and A-F.",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["device_type"].queryset = services.pairable_connectors()

    def clean_pin(self):
        try:
            return services.normalize_pin(self.cleaned_data["pin"])
        except services.InvalidPairingInput as exc:
            raise forms.ValidationError(exc.message) from exc

    def clean_serial_suffix(self):
        try:
            return services.normalize_serial_suffix(self.cleaned_data["serial_suffix"])
        except services.InvalidPairingInput as exc:
            raise forms.ValidationError(exc.message) from exc


class DeviceNameForm(forms.Form):
    """The name a user gives their device."""

    name = forms.CharField(
        label="Device name",
        max_length=100,
        error_messages={"required": "Give the device a name."},
    )

    def clean_name(self):
        try:
            return services.clean_device_name(self.cleaned_data["name"])
        except services.InvalidPairingInput as exc:
            raise forms.ValidationError(exc.message) from exc
