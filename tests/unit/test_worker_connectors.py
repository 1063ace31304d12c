"""The worker builds the connectors the configuration names, found by entry point, and refuses the rest."""

from __future__ import annotations

import pytest

from canonical import LegalEntity
from config import Settings
from connectors.roles import ErpProjectBooks
from worker import ConnectorUnavailable, build_connectors


async def test_the_default_configuration_builds_salesforce_kantata_xero_tryton_and_netsuite() -> None:
    connectors = build_connectors(Settings())
    try:
        assert connectors.crm.system == "salesforce"
        assert connectors.psa.system == "kantata"
        assert connectors.erps.for_entity("UK")[0].system == "xero"
        assert connectors.erps.for_entity("EU")[0].system == "tryton"
        assert connectors.erps.for_entity("US")[0].system == "netsuite"
    finally:
        await connectors.aclose()


def test_a_crm_that_is_not_installed_is_refused_naming_the_setting_and_what_is_installed() -> None:
    with pytest.raises(
        ConnectorUnavailable, match=r"PSSYNC_CRM.*'hubspot'.*installed: kantata, netsuite, salesforce"
    ):
        build_connectors(Settings(crm="hubspot"))


def test_an_erp_named_as_the_psa_is_refused_for_its_role() -> None:
    with pytest.raises(ConnectorUnavailable, match=r"PSSYNC_PSA.*'xero'.*not a PsaConnector"):
        build_connectors(Settings(psa="xero"))


def test_an_entity_booking_in_an_erp_that_is_not_installed_is_refused_naming_the_entity() -> None:
    uk = Settings().entity("UK")
    us = LegalEntity.model_validate({**uk.model_dump(), "code": "US", "erp": "quickbooks", "currency": "USD"})
    with pytest.raises(ConnectorUnavailable, match=r"legal entity US.*'quickbooks'"):
        build_connectors(Settings(entities=[uk, us]))


async def test_every_erp_says_which_dimensions_it_books_and_xero_only_those_the_entity_tracks() -> None:
    settings = Settings()
    uk = settings.entity("UK").model_copy(update={"tracked_dimensions": ("project", "practice")})
    connectors = build_connectors(settings)
    try:
        xero, _ = connectors.erps.for_entity("UK")
        tryton, eu = connectors.erps.for_entity("EU")
        netsuite, us = connectors.erps.for_entity("US")
        for erp in (xero, tryton, netsuite):
            assert isinstance(erp, ErpProjectBooks), erp.system
        assert isinstance(xero, ErpProjectBooks) and xero.booked_dimensions(uk) == ("project", "practice")
        assert isinstance(tryton, ErpProjectBooks) and tryton.booked_dimensions(eu) is None
        assert isinstance(netsuite, ErpProjectBooks) and netsuite.booked_dimensions(us) is None
    finally:
        await connectors.aclose()
