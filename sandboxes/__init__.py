"""Stand-ins for the vendor APIs we cannot reach from here. Used by the demo and tests only;
production code never imports this package."""
