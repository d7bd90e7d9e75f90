"""The shop's customers, products, orders and returns, behind one interface (:class:`ShopStore`)."""
