"""The built-in playbook: a play for every segment name custseg itself gives.

One entry per RFM segment (:data:`custseg.segmenters.rfm.SEGMENTS`), per value ×
risk segment (:mod:`custseg.clv.segments`) and per segment of the built-in rule
templates (:mod:`custseg.segmenters.rules.templates`); the templates whose
segments come from the data (countries, categories, interests, age bands,
genders) get one play per template, matched by the run's method. Anything else
(a clustering, your own rules) gets :data:`DEFAULT_PLAY`.

The plays follow common CRM practice: reward the best customers without
discounts, spend offers where a customer is slipping away and valuable enough
to win back, onboard new buyers towards the second order, remind browsers and
cart abandoners, and stop emailing the long lost to protect deliverability.
Every field is a suggestion to edit (``custseg playbook init -o playbook.yaml``).
"""

from __future__ import annotations

EMAIL = "email"
MONTHLY = "monthly"
SERVICE = "standard"
PRIORITY = "priority support"


def _play(segment, play, objective, actions, *, offer="none", cadence="every 2 weeks", service_level=SERVICE,
          kpi="conversion rate", channel=EMAIL, method=None) -> dict:
    entry = {"segment": segment}
    if method is not None:
        entry["method"] = method
    entry.update(play=play, objective=objective, actions=list(actions), channel=channel, offer=offer,
                 cadence=cadence, service_level=service_level, kpi=kpi)
    return entry


_VIP = {"offer": "none", "cadence": "2-4 emails a month", "service_level": PRIORITY}
_ONBOARD = ("Onboard", "Get the second order",
            ["Onboarding series: the brand, delivery and returns, product care",
             "Recommendations based on the first purchase",
             "Second-order incentive two to three weeks after the first order"])
_ONBOARD_KW = {"offer": "10% voucher on the second order", "cadence": "onboarding series: day 0, 3, 7, 14, 30",
               "kpi": "second-order rate within 60 days"}
_FIRST_ORDER = ("Convert to a first order", "Turn sign-ups and visitors into buyers",
                ["Welcome series introducing bestsellers and reviews", "First-order incentive"])
_PREMIUM = ("Premium experience", "Keep premium buyers buying premium, at full price",
            ["New premium arrivals and early access", "Premium service: gift wrapping, fast delivery",
             "No discounts"])
_VALUE_LED = ("Value-led", "Win orders on value, not on margin",
              ["Value bundles and bestsellers at entry prices", "Sale alerts",
               "Free shipping above a threshold to lift the basket"])
_TRADE_UP = ("Trade up", "Lift order value",
             ["Show premium alternatives to what they buy", "Bundles and complementary products"])
_GROW = ("Grow", "Lift them to high value",
         ["Cross-sell adjacent categories", "Bundles and loyalty points"])
_GROW_AOV = ("Grow order value", "Raise the basket cheaply",
             ["Bundles and free-shipping thresholds", "Bestsellers at entry prices"])
_LOYALTY = ("Build loyalty", "Make them repeat buyers",
            ["Personal recommendations", "Loyalty programme invitation"])

RFM_PLAYS = [
    _play("Champions", "Reward and refer", "Keep the best customers delighted and turn them into advocates",
          ["Thank-you note and early access to new products", "Referral programme invitation",
           "Ask for reviews and photos", "No discounts: they buy at full price"],
          **_VIP, kpi="repeat purchase rate"),
    _play("Loyal", "Deepen loyalty", "Raise order value and keep them buying",
          ["Loyalty programme: points or a tier upgrade", "Cross-sell and upsell from their favourite categories",
           "Ask for reviews"],
          offer="loyalty points", cadence="2-4 emails a month", service_level=PRIORITY, kpi="average order value"),
    _play("Potential Loyalists", "Build the habit", "Turn recent repeat buyers into loyal customers",
          ["Loyalty programme invitation", "Personal recommendations from their categories",
           "Replenishment reminder at their usual time between orders"],
          offer="free shipping", cadence="weekly", kpi="orders per customer in 90 days"),
    _play("New Customers", *_ONBOARD, **_ONBOARD_KW),
    _play("Promising", "Nurture", "Build awareness of the brand and a second purchase",
          ["Content about the brand and its bestsellers", "A sample or small gift with the next order"],
          offer="free shipping", kpi="second-order rate"),
    _play("Need Attention", "Re-activate with relevance", "Win their next order before they drift",
          ["Limited-time personal recommendations", "Reminder of products they viewed or bought"],
          offer="free shipping", cadence="weekly for 3 weeks", kpi="conversion rate"),
    _play("About to Sleep", "Wake up", "Re-engage before they lapse",
          ["Popular products and new arrivals", "Reconnect with a small incentive", "Ask them to update preferences"],
          offer="10% voucher", cadence="3 emails over 2 weeks", kpi="reactivation rate (order within 60 days)"),
    _play("At Risk", "Win back", "Bring back valuable customers who have gone quiet",
          ["Personal win-back email with a personal offer", "New products in their favourite categories",
           "Ask for feedback: why did they stop?"],
          offer="15% personal voucher", cadence="3 emails over 3 weeks", service_level=PRIORITY,
          kpi="reactivation rate (order within 60 days)"),
    _play("Can't Lose Them", "Personal win-back", "Win back big spenders who have not bought for a long time",
          ["Personal outreach: account manager or founder email", "The strongest personal offer or an exclusive gift",
           "Survey what went wrong, fix it and follow up"],
          channel="email and phone", offer="20% personal voucher", cadence="within a week, follow up after 2 weeks",
          service_level="priority support with a named contact", kpi="reactivated revenue"),
    _play("Hibernating", "Low-cost reactivation", "Reactivate cheaply, or let go",
          ["Bestsellers and seasonal offers in a low-frequency newsletter", "Their favourite categories"],
          offer="10% voucher", cadence=MONTHLY, kpi="reactivation rate (order within 60 days)"),
    _play("Lost", "Last chance, then sunset", "Try once to revive them, then protect deliverability",
          ["One last-chance win-back email", "Move non-responders to a sunset (suppression) list",
           "Paid-social retargeting only where cheap"],
          offer="10% voucher", cadence="once, then suppress", kpi="reactivation rate; unsubscribe and bounce rate"),
]

VALUE_PLAYS = [
    _play("High value · active", "VIP care", "Keep the most valuable customers happy without giving margin away",
          ["VIP tier: early access and exclusive previews", "Personal thank-you", "Referral programme invitation"],
          **_VIP, kpi="retention (P(alive)) and revenue per customer"),
    _play("High value · at risk", "Personal win-back", "Save valuable customers who are slipping away",
          ["Personal win-back email with a personal offer", "Personal outreach from customer service",
           "Ask what changed and fix it"],
          offer="15% personal voucher", cadence="within a week, 3 touches", service_level=PRIORITY,
          kpi="reactivation rate and retained CLV"),
    _play("High value · likely lost", "Last-chance VIP win-back", "Recover valuable customers who have probably left",
          ["The strongest personal offer", "Survey why they left", "Paid-social retargeting"],
          offer="20% personal voucher", cadence="2 touches over 4 weeks", service_level=PRIORITY,
          kpi="reactivation rate"),
    _play("Mid value · active", *_GROW, offer="free shipping", cadence="weekly",
          kpi="average order value and predicted CLV"),
    _play("Mid value · at risk", "Re-engage", "Bring them back before they lapse",
          ["Personal recommendations", "Reminder with an incentive"],
          offer="10% voucher", cadence="3 emails over 2 weeks", kpi="reactivation rate (order within 60 days)"),
    _play("Mid value · likely lost", "Win back cheaply", "Try a modest win-back, then reduce sends",
          ["Win-back email with a modest voucher", "Monthly newsletter only for non-responders"],
          offer="10% voucher", cadence="2 emails, then monthly", kpi="reactivation rate (order within 60 days)"),
    _play("Low value · active", *_GROW_AOV, offer="free shipping above a threshold", kpi="average order value"),
    _play("Low value · at risk", "Automated nudge", "Keep them in touch at low cost",
          ["Automated reminder flows only", "No costly offers"], cadence=MONTHLY, kpi="conversion rate"),
    _play("Low value · likely lost", "Sunset", "Stop spending on them and protect deliverability",
          ["Stop regular sends; one re-permission email", "Suppress non-responders"],
          cadence="once", kpi="unsubscribe and bounce rate"),
]

TEMPLATE_PLAYS = [
    _play("No orders", *_FIRST_ORDER, offer="10% first-order voucher", cadence="welcome series over 2 weeks",
          kpi="first-order conversion rate"),
    _play("Frequent buyers", "Reward frequency", "Keep frequent buyers loyal",
          ["Loyalty points or a tier upgrade", "Early access to new arrivals", "Referral programme invitation"],
          offer="loyalty points", cadence="weekly", service_level=PRIORITY, kpi="purchase frequency"),
    _play("Occasional buyers", "Increase frequency", "Bring the next order forward",
          ["Replenishment and seasonal reminders", "Recommendations from their categories"],
          offer="free shipping", kpi="orders per customer in 90 days"),
    _play("One-time buyers", "Get the second order", "Turn a first order into a habit",
          ["Post-purchase follow-up and product care tips", "Recommendations based on the first purchase",
           "Second-order incentive"],
          offer="10% voucher on the second order", cadence="3 emails over 30 days", kpi="second-order rate"),
    _play("Repeat buyers", "Keep the habit", "Keep repeat buyers coming back",
          ["Personal recommendations", "Loyalty programme invitation"], kpi="repeat purchase rate"),
    _play("Premium", *_PREMIUM, service_level=PRIORITY, kpi="average order value"),
    _play("Premium shoppers", *_PREMIUM, service_level=PRIORITY, kpi="average order value"),
    _play("Budget", *_VALUE_LED, offer="free shipping above a threshold", kpi="conversion rate"),
    _play("Budget shoppers", *_VALUE_LED, offer="free shipping above a threshold", kpi="conversion rate"),
    _play("Mid-range", *_TRADE_UP, kpi="average order value"),
    _play("Mixed shoppers", *_TRADE_UP, kpi="average order value"),
    _play("New", *_ONBOARD, **_ONBOARD_KW),
    _play("Other buyers", *_LOYALTY, kpi="repeat purchase rate"),
    _play("Active", "Keep engaged", "Keep active customers buying",
          ["Regular newsletter with new arrivals", "Cross-sell from their categories"], kpi="repeat purchase rate"),
    _play("Lapsed", "Win back", "Bring lapsed customers back before they are lost",
          ["Win-back series with personal recommendations", "Ask for feedback"],
          offer="10% voucher", cadence="3 emails over 3 weeks", kpi="reactivation rate (order within 60 days)"),
    _play("Inactive", "Reactivate or sunset", "One serious attempt, then protect deliverability",
          ["One reactivation email with an incentive", "Suppress non-responders"],
          offer="15% voucher", cadence="once, then suppress", kpi="reactivation rate; unsubscribe and bounce rate"),
    _play("High value", "VIP care", "Keep the most valuable customers happy without giving margin away",
          ["VIP tier: early access and exclusive previews", "Personal thank-you", "Referral programme invitation"],
          **_VIP, kpi="revenue per customer"),
    _play("Mid value", *_GROW, offer="free shipping", cadence="weekly", kpi="average order value"),
    _play("Low value", *_GROW_AOV, offer="free shipping above a threshold", kpi="average order value"),
    _play("Discount seekers", "Price-led offers", "Convert price-sensitive buyers without training everyone to wait",
          ["Time-limited sales and voucher campaigns", "Clearance and bundle deals",
           "Keep them out of full-price launches; watch the margin"],
          offer="10% voucher", cadence="around sale events", kpi="conversion rate and margin per order"),
    _play("Occasional discount users", "Promotions with restraint", "Use offers only where they add orders",
          ["Include in sale events; full-price messaging otherwise"], offer="free shipping", kpi="conversion rate"),
    _play("Full-price buyers", "Value without discounts", "Keep them buying at full price",
          ["Newness, quality and service messages", "Keep out of discount campaigns"],
          kpi="average order value and margin"),
    _play("Not emailed", "Start the conversation", "Begin an email relationship with those who agreed to it",
          ["Welcome series for customers with consent", "Collect preferences"], kpi="open rate"),
    _play("Unsubscribed", "Respect the opt-out", "Reach them without email",
          ["Do not email", "Personalise the website; retarget on paid social"],
          channel="website and paid social (no email)", cadence="no email", kpi="site conversion rate"),
    _play("Engaged", "Reward engagement", "Turn attention into orders",
          ["Early access and content", "Test a higher send frequency"], cadence="weekly",
          kpi="click rate and conversion rate"),
    _play("Disengaged", "Re-engage or reduce", "Win back attention or send less",
          ["Re-engagement series with a subject-line test", "Lower the send frequency",
           "Suppress after 90 days without an open"], cadence=MONTHLY, kpi="open rate"),
    _play("Window shoppers", "Browse reminders", "Turn browsing into a first order",
          ["Browse-abandonment reminders with the products viewed", "Social proof: reviews and bestsellers",
           "First-order incentive"],
          offer="free shipping", cadence="triggered within 24 hours of a visit", kpi="first-order conversion rate"),
    _play("Buyers", *_LOYALTY, kpi="repeat purchase rate"),
    _play("Not browsing", "Attract back", "Bring them back to the site",
          ["Newsletter with new arrivals", "Paid-social retargeting"], cadence=MONTHLY, kpi="site visits"),
    _play("Abandoned, never bought", "Cart reminders", "Recover the first order",
          ["Abandoned-cart reminders at 1, 24 and 72 hours", "Reassure on delivery and returns",
           "First-order incentive in the last reminder"],
          offer="free shipping", cadence="3 reminders in 72 hours", kpi="cart recovery rate"),
    _play("Cart abandoners", "Cart reminders", "Recover abandoned carts without training customers to wait",
          ["Abandoned-cart reminders with the cart's contents", "Stock and delivery information",
           "No discount in the first reminder"],
          cadence="2 reminders in 48 hours", kpi="cart recovery rate"),
    _play("Others", "Standard programme", "No abandoned cart to act on",
          ["Regular newsletter", "Personal recommendations"], method="template:cart_abandoners"),
    # Templates whose segments are data: one play for all their segments, by the run's method.
    _play("*", "Tailor by age", "Make creative and products fit the age group",
          ["Age-appropriate creative and products", "Test messages per age band"],
          kpi="click rate", method="template:age_band"),
    _play("*", "Tailor creative", "Make creative and products relevant",
          ["Relevant products and imagery", "Avoid assumptions where gender is unknown"],
          kpi="click rate", method="template:gender"),
    _play("*", "Localise", "Speak each country's language and calendar",
          ["Local language, currency and holidays", "Local delivery and returns promises"],
          kpi="conversion rate", method="template:country"),
    _play("*", "Category-led", "Sell more of what they already love",
          ["Category newsletter: new arrivals in their top category", "Recommendations from the category"],
          kpi="click rate", method="template:top_category"),
    _play("*", "Interest-led", "Speak to every interest they show",
          ["Content and new arrivals for each interest", "Recommendations from those categories"],
          kpi="click rate", method="template:interests"),
]

DEFAULT_PLAY = _play("default", "Standard programme", "Keep in the regular programme and learn what works",
                     ["Regular newsletter", "Personal recommendations", "Test an offer against the holdout"])
DEFAULT_PLAY.pop("segment")

BUILTIN_PLAYS: list[dict] = RFM_PLAYS + VALUE_PLAYS + TEMPLATE_PLAYS
