// The Billing page's card entry: Stripe.js Elements. The form posts only the id Stripe
// returns (a PaymentMethod, or a card token where Stripe.js offers no PaymentMethod),
// never the card itself.
(function () {
  "use strict";
  var form = document.getElementById("billing-upgrade");
  if (!form || typeof Stripe === "undefined") {
    return;
  }
  var stripe = Stripe(form.getAttribute("data-publishable-key"));
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  var errors = document.getElementById("card-errors");
  var sending = false;
  form.addEventListener("submit", function (event) {
    var needsCard = form.getAttribute("data-needs-card") === "yes";
    var filled = document.querySelector("#card-element input") &&
      document.querySelector("#card-element input").value;
    if (sending || (!needsCard && !filled)) {
      return; // a plan change with the card on file
    }
    event.preventDefault();
    sending = true;
    errors.textContent = "";
    Promise.resolve(stripe.createPaymentMethod({ type: "card", card: card }))
      .then(function (result) {
        if (result && result.paymentMethod) {
          return result.paymentMethod.id;
        }
        if (result && result.error) {
          throw result.error;
        }
        return stripe.createToken(card).then(function (res) {
          if (res.error) {
            throw res.error;
          }
          return res.token.id;
        });
      })
      .then(function (id) {
        form.querySelector("input[name=payment_method]").value = id;
        form.submit();
      })
      .catch(function (err) {
        sending = false;
        errors.textContent = (err && err.message) || "The card was not accepted.";
      });
  });
})();
