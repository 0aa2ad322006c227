"""The sObjects the simulator knows: fields, types, key prefixes, required fields, relationships
and the describe metadata (lengths, picklist values, labels).

Picklists are unrestricted (as Salesforce's are unless an admin restricts them): any value is
stored; ``picklistValues`` only lists the defaults. String lengths are enforced on write
(``STRING_TOO_LONG``), as Salesforce does.
"""

from __future__ import annotations

import re
from typing import Any

from simulator.ids import KEY_PREFIXES

SYSTEM_FIELDS: dict[str, str] = {
    "Id": "id",
    "IsDeleted": "boolean",
    "CreatedDate": "datetime",
    "CreatedById": "reference",
    "LastModifiedDate": "datetime",
    "LastModifiedById": "reference",
    "SystemModstamp": "datetime",
    "OwnerId": "reference",
}
READ_ONLY = set(SYSTEM_FIELDS) - {"OwnerId"}

OBJECTS: dict[str, dict[str, Any]] = {
    "Account": {
        "label": "Account",
        "plural": "Accounts",
        "fields": {
            "Name": "string",
            "AccountNumber": "string",
            "Type": "picklist",
            "Industry": "picklist",
            "Phone": "phone",
            "Website": "url",
            "Description": "textarea",
            "BillingCity": "string",
            "BillingCountry": "string",
            "AnnualRevenue": "currency",
            "NumberOfEmployees": "int",
        },
        "required": ["Name"],
    },
    "Contact": {
        "label": "Contact",
        "plural": "Contacts",
        "fields": {
            "FirstName": "string",
            "LastName": "string",
            "Name": "string",
            "Email": "email",
            "Phone": "phone",
            "Title": "string",
            "AccountId": "reference",
            "Description": "textarea",
            "HasOptedOutOfEmail": "boolean",
            "Birthdate": "date",
        },
        "required": ["LastName"],
        "computed": {"Name"},
    },
    "Lead": {
        "label": "Lead",
        "plural": "Leads",
        "fields": {
            "FirstName": "string",
            "LastName": "string",
            "Name": "string",
            "Company": "string",
            "Email": "email",
            "Phone": "phone",
            "Status": "picklist",
            "LeadSource": "picklist",
            "IsConverted": "boolean",
            "Description": "textarea",
        },
        "required": ["LastName", "Company"],
        "computed": {"Name"},
        "defaults": {"Status": "Open - Not Contacted", "IsConverted": False},
    },
    "Case": {
        "label": "Case",
        "plural": "Cases",
        "fields": {
            "CaseNumber": "string",
            "Subject": "string",
            "Description": "textarea",
            "Status": "picklist",
            "Priority": "picklist",
            "Origin": "picklist",
            "ContactId": "reference",
            "AccountId": "reference",
            "SuppliedEmail": "email",
            "IsClosed": "boolean",
        },
        "required": [],
        "computed": {"CaseNumber", "IsClosed"},
        "defaults": {"Status": "New", "Priority": "Medium"},
    },
    "Opportunity": {
        "label": "Opportunity",
        "plural": "Opportunities",
        "fields": {
            "Name": "string",
            "StageName": "picklist",
            "CloseDate": "date",
            "Amount": "currency",
            "Probability": "percent",
            "AccountId": "reference",
            "Description": "textarea",
            "IsClosed": "boolean",
            "IsWon": "boolean",
        },
        "required": ["Name", "StageName", "CloseDate"],
        "computed": {"IsClosed", "IsWon"},
    },
    "Task": {
        "label": "Task",
        "plural": "Tasks",
        "fields": {
            "Subject": "combobox",
            "Status": "picklist",
            "Priority": "picklist",
            "ActivityDate": "date",
            "WhoId": "reference",
            "WhatId": "reference",
            "Description": "textarea",
            "IsClosed": "boolean",
        },
        "required": [],
        "computed": {"IsClosed"},
        "defaults": {"Status": "Not Started", "Priority": "Normal"},
    },
    "User": {
        "label": "User",
        "plural": "Users",
        "fields": {
            "Username": "string",
            "FirstName": "string",
            "LastName": "string",
            "Name": "string",
            "Email": "email",
            "Alias": "string",
            "IsActive": "boolean",
            "TimeZoneSidKey": "picklist",
            "Title": "string",
        },
        "required": ["Username", "LastName", "Email"],
        "computed": {"Name"},
        "defaults": {"IsActive": True, "TimeZoneSidKey": "Europe/London"},
        "no_owner": True,
        # Users come from the control API (POST /_sim/users); the REST API only reads them.
        "read_only": True,
    },
}

# Reference field → the objects it may point to (more than one: a polymorphic field).
REFERENCE_TARGETS: dict[str, list[str]] = {
    "AccountId": ["Account"],
    "ContactId": ["Contact"],
    "OwnerId": ["User"],
    "CreatedById": ["User"],
    "LastModifiedById": ["User"],
    "WhoId": ["Contact", "Lead"],
    "WhatId": ["Account", "Opportunity", "Case"],
}

# Parent object → child relationship name → (child object, reference field on the child).
CHILD_RELATIONSHIPS: dict[str, dict[str, tuple[str, str]]] = {
    "Account": {
        "Contacts": ("Contact", "AccountId"),
        "Cases": ("Case", "AccountId"),
        "Opportunities": ("Opportunity", "AccountId"),
        "Tasks": ("Task", "WhatId"),
    },
    "Contact": {"Cases": ("Case", "ContactId"), "Tasks": ("Task", "WhoId")},
    "Lead": {"Tasks": ("Task", "WhoId")},
    "Opportunity": {"Tasks": ("Task", "WhatId")},
    "Case": {"Tasks": ("Task", "WhatId")},
}

LENGTHS: dict[str, int] = {
    "FirstName": 40,
    "LastName": 80,
    "Email": 80,
    "SuppliedEmail": 80,
    "Phone": 40,
    "Title": 128,
    "AccountNumber": 40,
    "BillingCity": 40,
    "BillingCountry": 80,
    "CaseNumber": 30,
    "Alias": 8,
    "Username": 80,
    "Description": 32000,
}
DEFAULT_LENGTHS = {
    "string": 255,
    "picklist": 255,
    "combobox": 255,
    "email": 80,
    "phone": 40,
    "url": 255,
    "textarea": 32000,
    "id": 18,
    "reference": 18,
}

PICKLISTS: dict[tuple[str, str], list[str]] = {
    ("Account", "Type"): ["Prospect", "Customer - Direct", "Customer - Channel", "Other"],
    ("Account", "Industry"): ["Energy", "Manufacturing", "Technology", "Retail", "Other"],
    ("Lead", "Status"): [
        "Open - Not Contacted",
        "Working - Contacted",
        "Closed - Converted",
        "Closed - Not Converted",
    ],
    ("Lead", "LeadSource"): ["Web", "Phone Inquiry", "Partner Referral", "Other"],
    ("Case", "Status"): ["New", "Working", "Escalated", "Closed"],
    ("Case", "Priority"): ["High", "Medium", "Low"],
    ("Case", "Origin"): ["Phone", "Email", "Web"],
    ("Opportunity", "StageName"): [
        "Prospecting",
        "Qualification",
        "Needs Analysis",
        "Proposal/Price Quote",
        "Negotiation/Review",
        "Closed Won",
        "Closed Lost",
    ],
    ("Task", "Subject"): ["Call", "Send Letter", "Send Quote", "Other"],
    ("Task", "Status"): ["Not Started", "In Progress", "Completed", "Deferred"],
    ("Task", "Priority"): ["High", "Normal", "Low"],
    ("User", "TimeZoneSidKey"): ["Europe/London", "America/Los_Angeles", "Europe/Paris"],
}
CUSTOM_FIELD_TYPES = {
    "string", "textarea", "email", "phone", "url", "picklist", "boolean", "double", "int",
    "currency", "percent", "date", "datetime",
}  # fmt: skip

PICKLIST_DEFAULTS = {(obj, f): v for obj, spec in OBJECTS.items() for f, v in
                     spec.get("defaults", {}).items() if (obj, f) in PICKLISTS}  # fmt: skip


def object_names() -> list[str]:
    return list(OBJECTS)


def canonical_object(name: str) -> str | None:
    for obj in OBJECTS:
        if obj.lower() == name.lower():
            return obj
    return None


def all_fields(obj: str) -> dict[str, str]:
    fields = dict(SYSTEM_FIELDS)
    if OBJECTS[obj].get("no_owner"):
        fields.pop("OwnerId")
    fields.update(OBJECTS[obj]["fields"])
    return fields


def key_prefix(obj: str) -> str:
    return KEY_PREFIXES[obj]


def writable(obj: str, field: str) -> bool:
    return field not in READ_ONLY and field not in OBJECTS[obj].get("computed", set())


def reference_targets(field: str) -> list[str]:
    """The objects a reference field may point to; custom ``X__c`` references are not modelled."""
    return REFERENCE_TARGETS.get(field, [])


def relationship_name(field: str) -> str | None:
    """``AccountId`` → ``Account``, ``OwnerId`` → ``Owner``; None for a non-reference field."""
    if field in REFERENCE_TARGETS and field.endswith("Id"):
        return field[:-2]
    return None


def parent_relationship(obj: str, name: str) -> tuple[str, list[str]] | None:
    """(reference field, target objects) for a parent relationship name on ``obj``."""
    for field, ftype in all_fields(obj).items():
        rel = relationship_name(field) if ftype == "reference" else None
        if rel is not None and rel.lower() == name.lower():
            return field, reference_targets(field)
    return None


def child_relationship(obj: str, name: str) -> tuple[str, str, str] | None:
    """(relationship name, child object, reference field) for a child relationship on ``obj``."""
    for rel, (child, field) in CHILD_RELATIONSHIPS.get(obj, {}).items():
        if rel.lower() == name.lower():
            return rel, child, field
    return None


def field_length(field: str, ftype: str) -> int:
    return LENGTHS.get(field, DEFAULT_LENGTHS.get(ftype, 0))


def field_label(field: str) -> str:
    """``AccountId`` → ``Account ID``, ``FirstName`` → ``First Name``, ``Ext_Id__c`` → ``Ext Id``"""
    if field.endswith("__c"):
        return field[:-3].replace("_", " ")
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", field)
    return re.sub(r"\bId\b", "ID", words)
