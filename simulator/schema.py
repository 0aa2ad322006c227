"""The sObjects the simulator knows: fields, types, key prefixes and required fields."""

from __future__ import annotations

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
}

REFERENCE_TARGETS = {
    "AccountId": "Account",
    "ContactId": "Contact",
    "OwnerId": "User",
    "CreatedById": "User",
    "LastModifiedById": "User",
}


def object_names() -> list[str]:
    return list(OBJECTS)


def canonical_object(name: str) -> str | None:
    for obj in OBJECTS:
        if obj.lower() == name.lower():
            return obj
    return None


def all_fields(obj: str) -> dict[str, str]:
    fields = dict(SYSTEM_FIELDS)
    fields.update(OBJECTS[obj]["fields"])
    return fields


def key_prefix(obj: str) -> str:
    return KEY_PREFIXES[obj]


def writable(obj: str, field: str) -> bool:
    return field not in READ_ONLY and field not in OBJECTS[obj].get("computed", set())
