"""The management API's OpenAPI schema documents its refusals as well as its answers.

drf-spectacular describes what a view returns when all goes well. Every
management API operation can also refuse: bad input (400), no or a wrong
token (401), a caller who may not act (403), a connector or record the caller
cannot see (404) and a change that conflicts with what is stored (409). This
hook adds those responses, with the bodies DRF's error handling sends, to
every operation that can give them, so clients (and schemathesis in CI) can
rely on the schema for every status code. It also states what Gatehouse refuses
in every text field of a request body and every query parameter: a NUL character.
"""

ERROR = {
    "type": "object",
    "description": "Why the request was refused.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
INVALID = {
    "type": "object",
    "description": (
        "What is wrong with the input: for each field, a list of messages (nested for"
        " nested fields); `detail` or `non_field_errors` when the whole request is wrong."
    ),
    "additionalProperties": {},
}
REFUSALS = {
    "400": ("Invalid input; nothing was changed.", "ValidationError"),
    "401": ("No credentials, or a token that is unknown, revoked or expired.", "Error"),
    "403": ("The caller may not do this.", "Error"),
    "404": ("No such connector or record, or one the caller may not see.", "Error"),
    "409": ("The change conflicts with what is stored; nothing was changed.", "Error"),
}
WRITES = {"post", "put", "patch", "delete"}


def _refusals(path: str, method: str, operation: dict) -> list[str]:
    codes = []
    if "requestBody" in operation or any(
        parameter.get("in") == "query" for parameter in operation.get("parameters", [])
    ):
        codes.append("400")
    if operation.get("security"):
        codes += ["401", "403"]
    # A path names a record; a forged or stale cursor is a page that does not exist.
    if "{" in path or any(
        parameter.get("name") == "cursor" for parameter in operation.get("parameters", [])
    ):
        codes.append("404")
    if method in WRITES:
        codes.append("409")
    return codes


# The Foundry dialect (certificate self-provisioning) words every refusal its own way.
FOUNDRY_ERROR = {
    "type": "object",
    "description": "Why the request was refused, as Foundry clients expect it.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
FOUNDRY_PATHS = (
    "/foundry/certificates/",
    "/certificates/generate",
    "/certificates/provision",
    "/certificates/revoke",
)


# DRF refuses a NUL character in any text field (PostgreSQL cannot store one).
WITHOUT_NUL = "^[^\\u0000]*$"


def _forbid_nul(node) -> None:
    """Say so on every free-text string of a request body, nested ones included."""
    if isinstance(node, list):
        for item in node:
            _forbid_nul(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and not node.keys() & {"format", "enum", "pattern"}:
        node["pattern"] = WITHOUT_NUL
    for value in node.values():
        _forbid_nul(value)


def document_refusals(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: add the error responses each operation can give."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    schemas.setdefault("ValidationError", INVALID)
    schemas.setdefault("FoundryError", FOUNDRY_ERROR)
    for name, component in schemas.items():
        if name.endswith("Request"):
            _forbid_nul(component)
    for path, operations in result.get("paths", {}).items():
        foundry = path.endswith(FOUNDRY_PATHS)
        for method, operation in operations.items():
            # Gatehouse refuses a NUL anywhere in a query string (400) before any view runs.
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    _forbid_nul(parameter.get("schema"))
            responses = operation.setdefault("responses", {})
            codes = _refusals(path, method, operation)
            if foundry:
                # Every Foundry call reads fields from the body or the query string, and
                # needs the connector's certificate authority.
                codes = sorted({*codes, "400", "409"})
            # A view may name a refusal of its own (with its own words) without a body.
            codes = sorted({*codes, *(code for code in responses if code in REFUSALS)})
            for code in codes:
                description, component = REFUSALS[code]
                if foundry:
                    component = "FoundryError"
                response = responses.setdefault(code, {"description": description})
                response.setdefault(
                    "content",
                    {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
                )
    return result
