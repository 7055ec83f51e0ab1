"""The domain: values, events and the Inventory aggregate. Pure: no I/O."""
