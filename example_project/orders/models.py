"""A minimal shop order, linked to its WeChat Pay sharing order by out_order_no."""

from django.db import models


class Order(models.Model):
    number = models.CharField("订单号", max_length=32, unique=True)
    sub_mchid = models.CharField("子商户号", max_length=32)
    sharing_out_order_no = models.CharField("分账单号", max_length=64, unique=True)
    total_fen = models.PositiveIntegerField("金额（分）")
    shared_fen = models.PositiveIntegerField("已分账（分）")
    refund_may_proceed = models.BooleanField("可以退款", default=False)
    clawback_note = models.CharField("回退说明", max_length=200, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "订单"

    def __str__(self) -> str:
        return self.number
