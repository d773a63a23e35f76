"""Portal forms for the CA, certificate issuance and trust anchors."""

from django import forms

from certificates.models import EC_P256, KEY_TYPES

PEM_ROWS = 8


def _pem_field(label: str, help_text: str, required: bool = True) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=64 * 1024,
        strip=False,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": PEM_ROWS, "class": "mono", "spellcheck": "false"}),
    )


class AuthorityForm(forms.Form):
    key_type = forms.ChoiceField(choices=KEY_TYPES, initial=EC_P256, label="Key type")
    subject = forms.CharField(
        required=False,
        max_length=500,
        label="Subject",
        help_text="Optional, e.g. /C=US/ST=California/O=MyOrg/OU=MyDep/CN=MyDevAuthority",
    )


class IssueForm(forms.Form):
    name = forms.CharField(
        max_length=64,
        required=False,
        label="Device name (CN)",
        help_text="The device identity; may be left empty when the CSR names it.",
    )
    serial = forms.CharField(
        max_length=64,
        required=False,
        label="Serial number",
        help_text="Decimal, or hex starting 0x. Empty picks a random one.",
    )
    csr = _pem_field(
        "Certificate signing request",
        "Paste the device's CSR so its private key never leaves it. Empty: Gatehouse makes "
        "a key and shows it once.",
        required=False,
    )
    key_type = forms.ChoiceField(
        choices=KEY_TYPES, initial=EC_P256, label="Key type (without a CSR)"
    )


class TrustAnchorForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, label="Name")
    certificate = _pem_field(
        "CA certificate (PEM)", "The vendor CA that signs device certificates."
    )


class VerificationForm(forms.Form):
    certificate = _pem_field(
        "Verification certificate (PEM)",
        "A certificate whose CN is the code above, signed with this CA's private key.",
    )
