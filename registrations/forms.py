"""Portal forms for pairing a device by PIN and for a user's own devices."""

from django import forms

from registrations import services


class PairingForm(forms.Form):
    """Step one: the PIN the device shows and the last digits of its certificate's serial.

    No device type to choose: listing them would show every user other tenants'
    connectors; the PIN and serial digits find the device, and the next step names
    its type.
    """

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


class ShareForm(forms.Form):
    """Whom the owner of a hub shares it with."""

    username = forms.CharField(label="Username", max_length=150)
