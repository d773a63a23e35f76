"""The portal form a device maker registers a companion app with."""

from django import forms

from accounts import oauth


class AppForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="Users see this name on the consent page and under their apps.",
    )
    kind = forms.ChoiceField(
        label="Kind",
        choices=[(key, label) for key, (label, _, _) in oauth.APP_KINDS.items()],
        widget=forms.RadioSelect,
        initial=oauth.PUBLIC_APP,
    )
    redirect_uris = forms.CharField(
        label="Redirect URIs",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="One https URI a line. Authorization codes go only to a URI listed here, "
        "matched exactly. Not used by scripts.",
    )

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Give the app a name.")
        return name

    def clean(self):
        cleaned = super().clean()
        uris = (cleaned.get("redirect_uris") or "").split()
        if len(uris) > 10:
            self.add_error("redirect_uris", "At most 10 redirect URIs.")
        if any(len(uri) > 500 or "\x00" in uri for uri in uris):
            self.add_error("redirect_uris", "A redirect URI is at most 500 characters.")
        kind = cleaned.get("kind")
        if kind in (oauth.PUBLIC_APP, oauth.SERVER_APP) and not uris:
            self.add_error("redirect_uris", "An app that signs users in needs a redirect URI.")
        if kind == oauth.SCRIPT:
            uris = []
        cleaned["redirect_uri_list"] = uris
        return cleaned
