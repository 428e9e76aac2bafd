"""Where a merchant's data can come from besides files prepared by hand (:mod:`.klaviyo`)."""
