"""The live set of table definitions and relationships, and the navigation properties they imply.

A single-valued navigation property (``parentcustomerid_account``, ``ownerid``,
``regardingobjectid_contact_task``) is the referencing side of one or more one-to-many
relationships; a collection-valued one (``contact_customer_accounts``,
``task_activity_parties``) is the referenced side. Names are case-sensitive, as in Dataverse.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import AttributeDef, EntityDef, RelationshipDef
from connector.emulators.dataverse.protocol import bad_request


@dataclass(frozen=True)
class SingleNav:
    """A lookup column reachable by ``<name>@odata.bind`` and ``$expand=<name>``."""

    name: str
    attribute: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class CollectionNav:
    """Rows of ``entity`` whose ``attribute`` points back at this row."""

    name: str
    entity: str
    attribute: str


@dataclass(frozen=True)
class ManyNav:
    """A many-to-many navigation through an intersect table (``teammembership_association``)."""

    name: str
    target: str
    intersect: str
    self_column: str
    target_column: str


class Schema:
    """Definitions by logical name and by entity set, with derived navigation properties."""

    def __init__(self) -> None:
        self.entities: dict[str, EntityDef] = {}
        self.relationships: dict[str, RelationshipDef] = {}
        self._by_set: dict[str, EntityDef] = {}
        self._single: dict[str, dict[str, SingleNav]] = {}
        self._collection: dict[str, dict[str, CollectionNav]] = {}
        self.many: dict[str, dict[str, ManyNav]] = {}

    def add_many(self, entity: str, nav: ManyNav) -> None:
        """Register a many-to-many navigation on ``entity``."""
        self.many.setdefault(entity, {})[nav.name] = nav

    def add_entity(self, entity: EntityDef) -> None:
        """Register (or replace) a table."""
        self.entities[entity.logical_name] = entity
        self._by_set[entity.entity_set] = entity

    def add_relationship(self, rel: RelationshipDef) -> None:
        """Register a relationship and invalidate the navigation caches."""
        self.relationships[rel.schema_name] = rel
        self._single.clear()
        self._collection.clear()

    def remove_relationship(self, schema_name: str) -> None:
        """Forget a relationship (``DELETE RelationshipDefinitions(<id>)``)."""
        self.relationships.pop(schema_name, None)
        self._single.clear()
        self._collection.clear()

    def entity(self, logical_name: str) -> EntityDef:
        """A table by logical name, 404 when unknown."""
        found = self.entities.get(logical_name)
        if found is None:
            raise EmulatorRequestError(
                404, "0x80040217", f"Could not find entity with logical name '{logical_name}'."
            )
        return found

    def by_set(self, entity_set: str) -> EntityDef | None:
        """A table by entity set name, or None."""
        return self._by_set.get(entity_set)

    def require_set(self, entity_set: str) -> EntityDef:
        """A table by entity set name; 404 'Resource not found' like the Web API."""
        found = self._by_set.get(entity_set)
        if found is None:
            raise EmulatorRequestError(
                404, "0x8006088a", f"Resource not found for the segment '{entity_set}'."
            )
        return found

    def single_navs(self, logical_name: str) -> dict[str, SingleNav]:
        """Single-valued navigation properties of a table, by case-sensitive name."""
        if not self._single:
            self._rebuild()
        return self._single.get(logical_name, {})

    def collection_navs(self, logical_name: str) -> dict[str, CollectionNav]:
        """Collection-valued navigation properties of a table."""
        if not self._collection:
            self._rebuild()
        return self._collection.get(logical_name, {})

    def _rebuild(self) -> None:
        single: dict[str, dict[str, SingleNav]] = {}
        collection: dict[str, dict[str, CollectionNav]] = {}
        for rel in self.relationships.values():
            navs = single.setdefault(rel.referencing_entity, {})
            known = navs.get(rel.referencing_nav)
            targets = (known.targets if known else ()) + (rel.referenced_entity,)
            navs[rel.referencing_nav] = SingleNav(
                rel.referencing_nav, rel.referencing_attribute, targets
            )
            collection.setdefault(rel.referenced_entity, {})[rel.referenced_nav] = CollectionNav(
                rel.referenced_nav, rel.referencing_entity, rel.referencing_attribute
            )
        self._single = single or {"": {}}
        self._collection = collection or {"": {}}

    def attribute(self, entity: EntityDef, name: str) -> AttributeDef:
        """A column by logical name (or ``_x_value`` form), 400 when undeclared."""
        if name.startswith("_") and name.endswith("_value"):
            name = name[1:-6]
        found = entity.attributes.get(name)
        if found is None:
            raise bad_request(
                f"Could not find a property named '{name}' on type "
                f"'Microsoft.Dynamics.CRM.{entity.logical_name}'."
            )
        return found


def one_to_many(
    schema_name: str,
    referenced: EntityDef,
    referencing: str,
    attribute: str,
    nav: str,
    *,
    collection_nav: str | None = None,
) -> RelationshipDef:
    """A relationship with the emulator's default naming."""
    return RelationshipDef(
        schema_name=schema_name,
        referenced_entity=referenced.logical_name,
        referenced_attribute=referenced.primary_id,
        referencing_entity=referencing,
        referencing_attribute=attribute,
        referencing_nav=nav,
        referenced_nav=collection_nav or schema_name,
    )
