"""How a time reads wherever a page prints one without its own format (the operators' admin above
all): to the second, with the zone, and day-first ISO so operators in any country read it alike.
Tenant pages print in the tenant's zone (``tenants.decorators.tenant_page``); the admin in
``TIME_ZONE`` (UTC), and says so."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
