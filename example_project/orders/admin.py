from django.contrib import admin

from .models import Order


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = (
        "number",
        "sub_mchid",
        "sharing_out_order_no",
        "total_fen",
        "shared_fen",
        "refund_may_proceed",
        "clawback_note",
    )
    list_filter = ("refund_may_proceed",)
    search_fields = ("number", "sharing_out_order_no")
