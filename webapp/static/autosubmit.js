// The provider's checkout form posts itself (Alipay's page pay); its button is there without JavaScript.
document.getElementById("checkout-form").submit();
