"""Serializer fields that read request bodies as strictly as the schema describes them.

DRF is lenient by default: a BooleanField also takes 1, "yes" and "on", a CharField
also takes a number. The management API's schema says `boolean` and `string`, so
clients (and schemathesis) may rely on anything else being refused with a 400.
"""

from django.db import models
from rest_framework import serializers
from rest_framework.utils import html


class StrictBooleanField(serializers.BooleanField):
    """true or false; in a form body (CSV import) the words "true" or "false"."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if data is True or data is False:
            return data
        if html.is_html_input(getattr(self.root, "initial_data", None)) and data in (
            "true",
            "false",
        ):
            return data == "true"
        self.fail("invalid")


class StrictCharField(serializers.CharField):
    """A JSON string, never a number or a boolean turned into one."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose fields taken from the model are strict too."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.BooleanField: StrictBooleanField,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }
