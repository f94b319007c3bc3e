// The drawing page: draw or upload a digit or a number, POST it to /predict, show each digit read and its box.
"use strict";

(function () {
  const STROKE_WIDTH = 18; // On the 280x280 canvas: about MNIST's stroke once the digit is fitted to 20x20.

  const canvas = document.getElementById("canvas");
  const context = canvas.getContext("2d");
  const result = document.getElementById("result");
  const digitOutput = document.getElementById("digit");
  const confidenceOutput = document.getElementById("confidence");
  const sourceOutput = document.getElementById("source");
  const errorOutput = document.getElementById("error");
  const bars = document.getElementById("bars");
  const preview = document.getElementById("preview");
  const previewImage = preview.querySelector("img");
  const fileInput = document.getElementById("file");
  const dropZone = document.getElementById("drop-zone");
  const digitList = document.getElementById("digits");
  const canvasBoxes = document.getElementById("canvas-boxes");
  const uploadView = document.getElementById("upload-view");
  const uploadImage = uploadView.querySelector("img");
  const uploadBoxes = document.getElementById("upload-boxes");

  let activePointer = null;
  let lastPoint = null;
  let latestRequest = 0; // Answers to older requests arrive late sometimes; only the latest is shown.
  let shownDigits = []; // The digits of the answer shown, for choosing whose probabilities the bars show.

  /** Black paper and white round ink, as MNIST's digits are. */
  function clearCanvas() {
    context.fillStyle = "#000";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.strokeStyle = "#fff";
    context.fillStyle = "#fff";
    context.lineWidth = STROKE_WIDTH;
    context.lineCap = "round";
    context.lineJoin = "round";
  }

  /** A pointer event's position in canvas pixels, whatever size CSS gives the canvas. */
  function canvasPoint(event) {
    const box = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left - canvas.clientLeft) * canvas.width) / canvas.clientWidth,
      y: ((event.clientY - box.top - canvas.clientTop) * canvas.height) / canvas.clientHeight,
    };
  }

  function dot(point) {
    context.beginPath();
    context.arc(point.x, point.y, STROKE_WIDTH / 2, 0, 2 * Math.PI);
    context.fill();
  }

  function segment(from, to) {
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (activePointer !== null || (event.pointerType === "mouse" && event.button !== 0)) {
      return;
    }
    event.preventDefault();
    activePointer = event.pointerId;
    canvas.setPointerCapture(event.pointerId);
    lastPoint = canvasPoint(event);
    dot(lastPoint);
  });

  canvas.addEventListener("pointermove", (event) => {
    if (event.pointerId !== activePointer) {
      return;
    }
    // Coalesced events are the in-between positions a fast pen or finger reported since the last frame.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of events.length ? events : [event]) {
      const point = canvasPoint(each);
      segment(lastPoint, point);
      lastPoint = point;
    }
  });

  function endStroke(event) {
    if (event.pointerId !== activePointer) {
      return;
    }
    activePointer = null;
    lastPoint = null;
    if (event.type === "pointerup") {
      predictCanvas();
    }
  }

  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  function predictCanvas() {
    const request = beginRequest(); // Now, not in the callback: a Clear in between must win.
    hideUpload();
    const target = { boxes: canvasBoxes, width: canvas.width, height: canvas.height };
    canvas.toBlob((blob) => predict(request, blob, "canvas.png", "your drawing", target), "image/png");
  }

  function beginRequest() {
    result.setAttribute("aria-busy", "true");
    return ++latestRequest;
  }

  /** POST one image as the multipart field `file` and show the answer or the API's error message.
   *  `target` is where the digits' boxes go: an overlay and the size in pixels of the image under it. */
  async function predict(request, image, filename, description, target) {
    const form = new FormData();
    form.append("file", image, filename);
    let body = null;
    let failure = null;
    try {
      const response = await fetch("predict", { method: "POST", body: form });
      body = await response.json().catch(() => null);
      if (!response.ok || !body || typeof body.text !== "string" || !Array.isArray(body.digits)) {
        failure = body && body.message ? body.message : `The server answered ${response.status}.`;
      }
    } catch (error) {
      failure = "Could not reach the server. Is it running?";
    }
    const place = await target;
    if (request !== latestRequest) {
      return; // A newer drawing, upload or Clear came since.
    }
    result.setAttribute("aria-busy", "false");
    if (failure) {
      showError(failure);
    } else {
      showPrediction(body, description, place);
    }
  }

  function buildBars() {
    for (let digit = 0; digit < 10; digit++) {
      const item = document.createElement("li");
      item.dataset.digit = String(digit);
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = String(digit);
      label.setAttribute("aria-hidden", "true");
      const track = document.createElement("span");
      track.className = "track";
      track.setAttribute("role", "meter");
      track.setAttribute("aria-label", `Probability of ${digit}`);
      track.setAttribute("aria-valuemin", "0");
      track.setAttribute("aria-valuemax", "100");
      const fill = document.createElement("span");
      fill.className = "fill";
      track.append(fill);
      const value = document.createElement("span");
      value.className = "value";
      value.setAttribute("aria-hidden", "true");
      item.append(label, track, value);
      bars.append(item);
    }
    setBars(null);
  }

  /** Bar widths from the ten probabilities, or empty bars for null. */
  function setBars(probabilities, best) {
    for (const item of bars.children) {
      const digit = Number(item.dataset.digit);
      const percent = probabilities ? probabilities[digit] * 100 : 0;
      const text = probabilities ? formatPercent(percent) : "";
      item.classList.toggle("best", digit === best);
      item.querySelector(".fill").style.width = `${percent.toFixed(2)}%`;
      item.querySelector(".value").textContent = text;
      const track = item.querySelector(".track");
      track.setAttribute("aria-valuenow", percent.toFixed(2));
      track.setAttribute("aria-valuetext", text || "no prediction");
    }
  }

  function formatPercent(percent) {
    if (percent >= 99.95) {
      return "100%";
    }
    if (percent < 0.005) {
      return "0%";
    }
    return percent >= 10 ? `${percent.toFixed(1)}%` : `${percent.toFixed(2)}%`;
  }

  /** The whole number as text, how sure the model is of all of it, and each digit to choose from. */
  function showPrediction(body, description, target) {
    errorOutput.textContent = "";
    digitOutput.textContent = body.text;
    const sure = body.digits.reduce((product, digit) => product * digit.confidence, 1);
    confidenceOutput.textContent = `${formatPercent(sure * 100)} sure`;
    sourceOutput.textContent = `from ${description}`;
    showDigits(body.digits, target);
    selectDigit(0);
  }

  /** One button per digit read (when there are several), and a box over the picture around each. */
  function showDigits(digits, target) {
    digitList.replaceChildren();
    canvasBoxes.replaceChildren();
    uploadBoxes.replaceChildren();
    digits.forEach((digit, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.dataset.index = String(index);
      button.setAttribute("aria-label", `Digit ${index + 1}: ${digit.digit}, ${formatPercent(digit.confidence * 100)} sure`);
      const image = document.createElement("img");
      image.src = digit.image;
      image.alt = "";
      image.width = 28;
      image.height = 28;
      const label = document.createElement("span");
      label.textContent = String(digit.digit);
      button.append(image, label);
      button.addEventListener("click", () => selectDigit(index));
      const item = document.createElement("li");
      item.append(button);
      digitList.append(item);
      if (target && target.width && target.height && digit.box) {
        target.boxes.append(makeBox(digit, index, target));
      }
    });
    digitList.hidden = digits.length < 2;
    shownDigits = digits;
  }

  /** A box in percent of the picture, so it stays on its digit whatever size CSS gives the picture. */
  function makeBox(digit, index, target) {
    const box = document.createElement("div");
    box.className = "box";
    box.dataset.index = String(index);
    box.style.left = `${(100 * digit.box.left) / target.width}%`;
    box.style.top = `${(100 * digit.box.top) / target.height}%`;
    box.style.width = `${(100 * digit.box.width) / target.width}%`;
    box.style.height = `${(100 * digit.box.height) / target.height}%`;
    const label = document.createElement("span");
    label.textContent = String(digit.digit);
    box.append(label);
    return box;
  }

  /** Show one digit's probabilities and 28x28 image, and mark it in the list and on the picture. */
  function selectDigit(index) {
    const digits = shownDigits;
    const digit = digits[index];
    if (!digit) {
      return;
    }
    setBars(digit.probabilities, digit.digit);
    previewImage.src = digit.image;
    preview.hidden = false;
    for (const element of document.querySelectorAll("#digits button, .boxes .box")) {
      const chosen = Number(element.dataset.index) === index && digits.length > 1;
      element.classList.toggle("chosen", chosen);
      if (element.tagName === "BUTTON") {
        element.setAttribute("aria-pressed", String(chosen));
      }
    }
  }

  function showError(message) {
    clearResult();
    errorOutput.textContent = message;
  }

  function clearResult() {
    errorOutput.textContent = "";
    digitOutput.textContent = "";
    confidenceOutput.textContent = "";
    sourceOutput.textContent = "";
    setBars(null);
    preview.hidden = true;
    previewImage.removeAttribute("src");
    digitList.replaceChildren();
    digitList.hidden = true;
    shownDigits = [];
    canvasBoxes.replaceChildren();
    uploadBoxes.replaceChildren();
  }

  function hideUpload() {
    uploadView.hidden = true;
    if (uploadImage.src) {
      URL.revokeObjectURL(uploadImage.src);
      uploadImage.removeAttribute("src");
    }
  }

  /** Show the picture under the upload zone; resolves to where its boxes go once its size is known. */
  async function showUpload(file) {
    hideUpload();
    uploadImage.src = URL.createObjectURL(file);
    try {
      await uploadImage.decode();
    } catch (error) {
      return null; // Not a picture the browser shows; the API's answer says what it makes of it.
    }
    uploadView.hidden = false;
    return { boxes: uploadBoxes, width: uploadImage.naturalWidth, height: uploadImage.naturalHeight };
  }

  function predictFile(file) {
    if (file) { // Whether it is an image the API decides, and its message says why not.
      canvasBoxes.replaceChildren();
      predict(beginRequest(), file, file.name, file.name, showUpload(file));
    }
  }

  document.getElementById("predict").addEventListener("click", predictCanvas);

  document.getElementById("clear").addEventListener("click", () => {
    latestRequest++; // An answer still on its way is for a drawing that is gone.
    result.setAttribute("aria-busy", "false");
    clearCanvas();
    clearResult();
    hideUpload();
    fileInput.value = "";
  });

  fileInput.addEventListener("change", () => predictFile(fileInput.files[0]));

  dropZone.addEventListener("dragover", (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    dropZone.classList.add("dragging");
  });
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    predictFile(event.dataTransfer.files[0]);
  });
  // A file dropped just beside the zone must not make the browser leave the page to show it.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  clearCanvas();
  buildBars();
})();
